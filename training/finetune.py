"""Two-phase fine-tuning of EfficientNet, as in keras-io's ``image_classification_efficientnet_fine_tuning``.

Phase ``head`` trains the new classifier head on a frozen base; phase ``top`` also unfreezes the
top blocks of the base, keeping every BatchNormalization layer frozen (their statistics would be
wrecked by small batches) and using a low learning rate. A schedule such as ``"head:6,top:4"``
repeated twice runs head 6 epochs, top 4, head 6, top 4. Each phase recompiles the model (Keras
needs it after ``trainable`` changes), checkpoints every epoch, and can be resumed: finished
phases are recorded in ``phases.json`` with their weights, the current phase resumes through
``BackupAndRestore``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

#: Phase kinds: train only the head, or the head and the top blocks of the base.
PHASE_KINDS: tuple[str, ...] = ("head", "top")
#: Layers that belong to the classifier head (trainable in every phase, BatchNorm aside in "top").
HEAD_PREFIXES: tuple[str, ...] = ("head_", "logits", "probabilities")


@dataclass(frozen=True)
class Phase:
    """One fine-tuning phase: ``kind`` in :data:`PHASE_KINDS` and its number of epochs."""

    kind: str
    epochs: int


def parse_phases(text: str, repeats: int = 1) -> list[Phase]:
    """Parse a phase schedule such as ``"head:6,top:4"``, repeated ``repeats`` times.

    Raises
    ------
    ValueError
        If a phase is not ``kind:epochs`` with a known kind and a positive epoch count, or
        ``repeats`` is below 1.
    """
    if repeats < 1:
        raise ValueError(f"phase_repeats has to be at least 1; got {repeats}")
    phases = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        kind, _, epochs = item.partition(":")
        if kind not in PHASE_KINDS or not epochs.isdigit() or int(epochs) < 1:
            raise ValueError(f"phase has to be 'head:EPOCHS' or 'top:EPOCHS' with EPOCHS >= 1; got {item!r}")
        phases.append(Phase(kind, int(epochs)))
    if not phases:
        raise ValueError(f"phases has to name at least one phase (e.g. 'head:6,top:4'); got {text!r}")
    return phases * repeats


def _stage(name: str) -> int | None:
    """Return the EfficientNet stage (1-7) of a ``blockNx_...`` layer name, 8 for ``top_*``, else None."""
    if name.startswith("top_"):
        return 8
    if name.startswith("block") and len(name) > 5 and name[5].isdigit():
        return int(name[5])
    return None


def set_trainable_phase(model, kind: str, *, unfreeze_blocks: int = 2) -> list[str]:
    """Freeze and unfreeze the layers of an EfficientNet classifier for one phase.

    Parameters
    ----------
    model : keras.Model
        Built by :func:`training.models.build_efficientnet`.
    kind : {"head", "top"}
        ``head``: only the head's layers train. ``top``: the head and the top ``unfreeze_blocks``
        stages of the base (blocks 7, 6, ... and the ``top_`` convolution) train, and no
        BatchNormalization layer does.
    unfreeze_blocks : int
        Number of EfficientNet stages (of 7) unfrozen in the ``top`` phase.

    Returns
    -------
    list of str
        Names of the layers left trainable (with weights).

    Raises
    ------
    ValueError
        If ``kind`` is unknown or ``unfreeze_blocks`` is outside 0-7.
    """
    from keras import layers

    if kind not in PHASE_KINDS:
        raise ValueError(f"phase kind has to be one of {PHASE_KINDS}; got {kind!r}")
    if not 0 <= unfreeze_blocks <= 7:
        raise ValueError(f"unfreeze_blocks has to be in 0-7; got {unfreeze_blocks}")
    first_stage = 8 - unfreeze_blocks
    trainable = []
    for layer in model.layers:
        is_head = layer.name.startswith(HEAD_PREFIXES)
        stage = _stage(layer.name)
        train_it = is_head or (kind == "top" and stage is not None and stage >= first_stage)
        if kind == "top" and isinstance(layer, layers.BatchNormalization):
            train_it = False
        layer.trainable = train_it
        if train_it and layer.weights:
            trainable.append(layer.name)
    return trainable


def fit_phases(model, phases: list[Phase], *, train_data, val_data, out: Path, learning_rate: float,
               finetune_learning_rate: float, unfreeze_blocks: int, compile_kwargs: dict,
               callbacks_for_phase, steps_per_epoch: int | None = None, verbose: int = 2) -> int:
    """Run the phases in order, resuming after the last finished one recorded in ``out/phases.json``.

    Parameters
    ----------
    model : keras.Model
        An EfficientNet classifier from :func:`training.models.build_efficientnet`.
    phases : list of Phase
        From :func:`parse_phases` (kind ``"head"`` or ``"top"``, epochs).
    train_data, val_data : tf.data.Dataset
        Batches of (images (B, S, S, C) float32 0-255, targets (B, 7) float32).
    out : Path
        Run folder (``phases.json``, ``phase<i>.weights.h5``, ``backup/phase<i>``).
    learning_rate, finetune_learning_rate : float
        Adam learning rate of ``head`` and ``top`` phases (keras-io: 1e-2 and 1e-5; lower here).
    unfreeze_blocks : int
        EfficientNet blocks (from the top) that ``top`` phases unfreeze; BatchNorm stays frozen
        (:func:`set_trainable_phase`).
    compile_kwargs : dict
        ``loss`` and ``metrics`` for ``model.compile``.
    callbacks_for_phase : callable
        ``(index) -> list of callbacks`` (checkpoints, early stopping, logs) for phase ``index``.
    steps_per_epoch : int, optional
        Batches per epoch (needed for an endless dataset, e.g. balanced sampling); None: one pass.
    verbose : int, default 2
        Keras ``fit`` verbosity.

    Returns
    -------
    int
        Total epochs run (the last epoch index + 1).

    Raises
    ------
    ValueError
        From :func:`set_trainable_phase`, if a phase kind is unknown or ``unfreeze_blocks`` is invalid.
    """
    import keras

    state_path = out / "phases.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"done": [], "epoch": 0}
    if state["done"]:
        model.load_weights(out / f"phase{state['done'][-1]}.weights.h5")
    epoch = state["epoch"]
    for index, phase in enumerate(phases):
        if index in state["done"]:
            continue
        names = set_trainable_phase(model, phase.kind, unfreeze_blocks=unfreeze_blocks)
        lr = learning_rate if phase.kind == "head" else finetune_learning_rate
        model.compile(optimizer=keras.optimizers.Adam(lr), **compile_kwargs)
        print(f"phase {index + 1}/{len(phases)}: {phase.kind} for {phase.epochs} epochs, learning rate {lr:g}, "
              f"{len(names)} trainable layers", flush=True)
        callbacks = [keras.callbacks.BackupAndRestore(str(out / "backup" / f"phase{index}")),
                     *callbacks_for_phase(index)]
        history = model.fit(train_data, validation_data=val_data, initial_epoch=epoch, epochs=epoch + phase.epochs,
                            steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose)
        epoch = history.epoch[-1] + 1 if history.epoch else epoch + phase.epochs
        model.save_weights(out / f"phase{index}.weights.h5")
        state = {"done": [*state["done"], index], "epoch": epoch}
        state_path.write_text(json.dumps(state))
    return epoch
