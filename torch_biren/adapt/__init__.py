"""Model adaptation: the zoo of supported model families and the ladder that brings them up on biren."""
