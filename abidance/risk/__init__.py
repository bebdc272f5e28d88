"""The risk engine: sizing, pre-trade checks, circuit breakers, kill switch."""
