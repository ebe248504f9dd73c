"""EmotiVoice release → voxserve pack (``convert``), and a writer of random releases (``layout``)."""
