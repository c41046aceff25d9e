"""A client for the Kubernetes CRI (`runtime.v1`) built at test time from the API's
descriptor embedded in the containerd binary: crictl is not packaged here and the project
ships no .proto file or generated code.

Go protobuf registrations keep every compiled .proto file as a gzip-compressed
FileDescriptorProto in the binary's read-only data; containerd 1.6 vendors k8s.io/cri-api,
whose `api.proto` (package `runtime.v1`) is the API kubelet speaks. Its gogoproto options
are extensions this pool does not know: they are dropped (they only change Go code
generation), so the file then depends on nothing but itself.

Requests and replies are the real message classes (`client.new("PodSandboxConfig", ...)`,
reply attributes), so a misspelt field is an error, not a silently empty request."""

from __future__ import annotations

import os

# grpc's fork support restarts its threads in every forked child of the pytest process:
# tests that fork and then unshare(CLONE_NEWUSER) (EINVAL when threaded) or load a seccomp
# KILL filter (a child that never ends) broke once the CRI tests had run. Set before grpc
# is first imported; the tests never use grpc across a fork.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import zlib
from pathlib import Path
from typing import Any

GZIP_MAGIC = b"\x1f\x8b\x08"
PACKAGE = "runtime.v1"
# Scan window per gzip candidate: the CRI descriptor is ~60 KiB compressed.
WINDOW = 1 << 20


class CriUnavailable(Exception):
    """grpcio/protobuf missing or no runtime.v1 descriptor in the binary: tests skip."""


class CriError(Exception):
    """A failed CRI call: the gRPC status code's name and containerd's message."""

    def __init__(self, method: str, code: str, details: str) -> None:
        super().__init__(f"{method}: {code}: {details}")
        self.method = method
        self.code = code
        self.details = details


def extract_descriptor(binary: Path) -> bytes:
    """The serialized FileDescriptorProto of package runtime.v1 found in ``binary``."""
    try:
        from google.protobuf import descriptor_pb2
    except ImportError as exc:
        raise CriUnavailable(f"protobuf is not installed ({exc}): pip install protobuf") from exc
    data = binary.read_bytes()
    pos = data.find(GZIP_MAGIC)
    while pos >= 0:
        try:
            raw = zlib.decompressobj(31).decompress(data[pos:pos + WINDOW])
        except zlib.error:
            raw = b""
        if raw:
            fd = descriptor_pb2.FileDescriptorProto()
            try:
                fd.ParseFromString(raw)
            except Exception:  # not a descriptor: some other gzip stream
                fd.Clear()
            if fd.package == PACKAGE and fd.service:
                return raw
        pos = data.find(GZIP_MAGIC, pos + 1)
    raise CriUnavailable(f"no {PACKAGE} API descriptor in {binary}")


class CriClient:
    """runtime.v1 RuntimeService and ImageService over a unix socket."""

    def __init__(self, address: Path, binary: Path = Path("/usr/bin/containerd")) -> None:
        try:
            import grpc
            from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        except ImportError as exc:
            raise CriUnavailable(f"grpcio/protobuf not installed ({exc}): "
                                 "pip install 'pyoci[test]'") from exc
        fd = descriptor_pb2.FileDescriptorProto.FromString(extract_descriptor(binary))
        # gogoproto option extensions become unknown fields here; drop them and the import.
        fd.DiscardUnknownFields()
        kept = [d for d in fd.dependency if d.startswith("google/protobuf/")]
        del fd.dependency[:]
        fd.dependency.extend(kept)
        del fd.public_dependency[:]
        del fd.weak_dependency[:]
        pool = descriptor_pool.DescriptorPool()
        for name in kept:
            pool.AddSerializedFile(_well_known(name))
        self._file = pool.Add(fd)
        self._classes: dict[str, Any] = {}
        self._factory = message_factory
        self._grpc = grpc
        self._methods: dict[str, tuple[str, Any, Any]] = {}
        for service in self._file.services_by_name.values():
            for method in service.methods:
                self._methods[method.name] = (f"/{service.full_name}/{method.name}",
                                              method.input_type, method.output_type)
        self._channel = grpc.insecure_channel(f"unix://{address}")

    def message_class(self, name: str) -> Any:
        if name not in self._classes:
            desc = self._file.pool.FindMessageTypeByName(f"{PACKAGE}.{name}")
            self._classes[name] = self._class_of(desc)
        return self._classes[name]

    def _class_of(self, desc: Any) -> Any:
        """GetMessageClass (protobuf >= 4.22); MessageFactory before (Debian 12's 4.21)."""
        get = getattr(self._factory, "GetMessageClass", None)
        if get is not None:
            return get(desc)
        return self._factory.MessageFactory(desc.file.pool).GetPrototype(desc)

    def new(self, name: str, **fields: Any) -> Any:
        """A runtime.v1 message; nested messages may be given as dicts."""
        from google.protobuf import json_format

        msg = self.message_class(name)()
        plain = {k: v for k, v in fields.items() if not _is_message(v)}
        json_format.ParseDict(plain, msg)
        for k, v in fields.items():
            if _is_message(v):
                getattr(msg, k).CopyFrom(v)
        return msg

    def enum_name(self, enum: str, value: int) -> str:
        return self._file.enum_types_by_name[enum].values_by_number[value].name

    def call(self, method: str, request: Any = None, deadline: float = 60.0,
             **fields: Any) -> Any:
        """Call ``method`` (e.g. "RunPodSandbox") with ``request`` or a request built from
        ``fields``; a non-OK status raises CriError."""
        path, in_desc, out_desc = self._methods[method]
        if request is None:
            request = self.new(in_desc.name, **fields)
        out_cls = self._class_of(out_desc)
        stub = self._channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=out_cls.FromString)
        try:
            return stub(request, timeout=deadline)
        except self._grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise CriError(method, code, details or "") from None

    def ready(self, timeout: float = 5.0) -> bool:
        try:
            self._grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except self._grpc.FutureTimeoutError:
            return False
        return True

    def close(self) -> None:
        self._channel.close()


def _is_message(value: Any) -> bool:
    return hasattr(value, "DESCRIPTOR") and hasattr(value, "SerializeToString")


def _well_known(name: str) -> bytes:
    """The serialized descriptor of a google/protobuf/*.proto the CRI file imports."""
    import importlib

    module = importlib.import_module("google.protobuf." + Path(name).stem + "_pb2")
    return module.DESCRIPTOR.serialized_pb
