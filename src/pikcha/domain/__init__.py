"""The pure core of Pikcha: no I/O, no logging, no clock or randomness of its own."""
