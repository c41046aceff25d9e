"""Executors: each applies one part of the config (namespaces, mounts, devices, process
attributes, hooks) through the syscall layer."""
