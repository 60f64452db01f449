"""Test support: real emulator processes and a fault-injecting proxy (test code, not part of qfan)."""
