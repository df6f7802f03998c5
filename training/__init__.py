"""Training pipeline for the FER platform's emotion classifier (FER2013, FER+, image folders)."""
