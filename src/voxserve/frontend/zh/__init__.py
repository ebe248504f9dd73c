"""Mandarin text processing: normalization, sentence splitting, segmentation, pinyin, sandhi, prosody."""
