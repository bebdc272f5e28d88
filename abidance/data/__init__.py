"""Market data: synthetic and recorded sources, bars, book sync."""
