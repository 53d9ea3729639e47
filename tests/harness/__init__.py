"""Test harnesses shared by the integration and e2e tiers: containerd node roots and sshd test hosts."""
