"""Collectors gather facts. This is the only package that speaks SSH or SNMP."""
