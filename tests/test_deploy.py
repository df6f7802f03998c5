"""The deployment files (deploy/): checked by the tools that read them, and every image and setting documented."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.skip(f"{name} is not installed (requirements-dev.txt)")
    return path


def _compose() -> dict:
    import yaml

    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_follows_the_compose_specification(tmp_path):
    tool = _tool("check-jsonschema")
    done = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "compose.yaml"  # the check can fail: a service with an unknown key
    broken.write_text((DEPLOY / "compose.yaml").read_text().replace("    restart: unless-stopped\n", "    restrat: no\n", 1))
    done = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(broken)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode != 0


def test_caddyfile_is_valid_and_pins_each_browser_to_one_replica(tmp_path):
    tool = _tool("caddy")
    env = {**os.environ, "FER_DOMAIN": "fer.example.org", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path)}  # fmt: skip
    command = [tool, "validate", "--adapter", "caddyfile", "--config"]
    done = subprocess.run([*command, str(DEPLOY / "Caddyfile")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    text = (DEPLOY / "Caddyfile").read_text()
    assert re.search(r"lb_policy\s+cookie", text) and "dynamic a dashboard 8501" in text
    broken = tmp_path / "Caddyfile"
    broken.write_text(text.replace("lb_policy cookie", "lb_policy sticky_nonsense"))
    assert subprocess.run([*command, str(broken)], capture_output=True, env=env, timeout=120).returncode != 0


def test_every_image_and_setting_is_documented():
    from dashboard.settings import ENV_VARS

    compose = _compose()
    readme = (DEPLOY / "README.md").read_text()
    for name, service in compose["services"].items():
        assert f"`{name}`" in readme, f"service {name} is not documented in deploy/README.md"
        assert f"`{service['image']}`" in readme, f"image {service['image']} is not documented"
    raw = (DEPLOY / "compose.yaml").read_text()
    for variable in set(re.findall(r"\$\{(\w+)", raw)):
        assert f"`{variable}`" in readme and variable in (DEPLOY / "env.example").read_text(), variable
    known = set(ENV_VARS.values())
    environment = compose["services"]["dashboard"]["environment"]
    for key in environment:
        assert key in known, f"{key} is not a dashboard setting (dashboard/settings.py)"
        assert f"`{key}`" in readme
    for line in (DEPLOY / "turnserver.conf").read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key and not key.startswith("#"):
            assert key in readme, f"turnserver.conf's {key} is not documented"


def test_replicas_share_one_store_and_one_account_file():
    compose = _compose()
    dashboard = compose["services"]["dashboard"]
    assert dashboard["environment"]["FER_DB_URL"].startswith("postgresql+psycopg://")
    assert dashboard["deploy"]["replicas"] >= 2
    assert "accounts:/accounts" in dashboard["volumes"] and dashboard["environment"]["FER_AUTH_FILE"].startswith("/accounts/")
    assert "FER_AUTH" not in dashboard["environment"]  # sign-in stays required behind the proxy
    assert dashboard["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert "turn:" in dashboard["environment"]["FER_ICE_SERVERS"]
