"""The matrix file: its loading and checking, the one parameter contract, profiles, cells, and
TensorFlow's tested build configurations."""
