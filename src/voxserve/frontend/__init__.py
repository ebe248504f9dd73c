"""voxserve text frontend: text → sentences → model symbols.

- ``interface``: ``PhoneSequence`` and the ``Frontend`` protocol the engine uses;
- ``mandarin``: ``MandarinFrontend``, the Mandarin implementation;
- ``zh``: Mandarin text processing (normalize, split, segment, pinyin, sandhi, prosody, letters);
- ``utterance``: the language-level result (words, syllables, break levels);
- ``symbols``: one mapper per model symbol set (``baker``), from ``Utterance`` to symbols;
- ``data``: shipped tables (``baker.json``, ``zh_lexicon.tsv``).

Importing this package loads nothing heavy; jieba and pypinyin load on first use.
"""
