"""One-shot adaptation: exemplar teacher, student generator, style packs."""
