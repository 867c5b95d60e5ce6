"""Command lines of the stages that need TensorFlow: their options without importing it."""
