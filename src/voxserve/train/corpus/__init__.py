"""The synthetic training corpus for the cloning voice: sentences, teachers, features, format, build."""
