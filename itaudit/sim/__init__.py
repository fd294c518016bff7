"""Simulated peers (test and demo only): an SSH fleet and an SNMP fleet on loopback."""
