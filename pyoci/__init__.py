"""pyoci: an OCI runtime-spec compliant, runc-compatible container runtime."""

__version__ = "0.1.0"
#: The runtime-spec version this build implements (written into state and `spec`).
OCI_VERSION = "1.3.0"
