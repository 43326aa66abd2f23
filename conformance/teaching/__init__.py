"""Teaching: ``explain``'s model of a case, its terminal text and its SVG pictures."""
