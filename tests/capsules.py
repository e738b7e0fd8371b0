"""Hand-made DLPack capsules, for feeding parewire._C what no well-behaved
producer would: NULL pointers, impossible shapes, foreign devices, wrong
versions.  The structs follow the open DLPack specification (v0.8 legacy
``DLManagedTensor``, v1.x ``DLManagedTensorVersioned``); nothing points at
memory the binding may touch unless the test says so.
"""

import ctypes
from ctypes import POINTER, Structure, c_int32, c_int64, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p

CPU, CUDA = 1, 2
INT, UINT, FLOAT, BFLOAT, COMPLEX, BOOL = 0, 1, 2, 4, 5, 6
READ_ONLY = 1


class DLDevice(Structure):
    _fields_ = [("device_type", c_int32), ("device_id", c_int32)]


class DLDataType(Structure):
    _fields_ = [("code", c_uint8), ("bits", c_uint8), ("lanes", c_uint16)]


class DLTensor(Structure):
    _fields_ = [
        ("data", c_void_p),
        ("device", DLDevice),
        ("ndim", c_int32),
        ("dtype", DLDataType),
        ("shape", POINTER(c_int64)),
        ("strides", POINTER(c_int64)),
        ("byte_offset", c_uint64),
    ]


DELETER = ctypes.CFUNCTYPE(None, c_void_p)


class DLManagedTensor(Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", c_void_p), ("deleter", DELETER)]


class DLPackVersion(Structure):
    _fields_ = [("major", c_uint32), ("minor", c_uint32)]


class DLManagedTensorVersioned(Structure):
    _fields_ = [
        ("version", DLPackVersion),
        ("manager_ctx", c_void_p),
        ("deleter", DELETER),
        ("flags", c_uint64),
        ("dl_tensor", DLTensor),
    ]


_new_capsule = ctypes.pythonapi.PyCapsule_New
_new_capsule.restype = ctypes.py_object
_new_capsule.argtypes = [c_void_p, c_void_p, c_void_p]


class Fabricated:
    """A capsule plus everything that must outlive it.  ``deleted`` counts
    calls of the DLPack deleter (the consumer must call it exactly once)."""

    def __init__(self, capsule, keep):
        self.capsule = capsule
        self._keep = keep
        self.deleted = 0


def fabricate(
    shape,
    strides=None,
    *,
    data=None,
    dtype=(FLOAT, 32, 1),
    device=CPU,
    byte_offset=0,
    ndim=None,
    versioned=False,
    version=(1, 0),
    flags=0,
    name=None,
    null_shape=False,
):
    """A DLPack capsule describing ``data`` (an address, or a numpy array whose
    buffer is used) with the given shape / strides in elements."""
    keep = []
    if data is not None and not isinstance(data, int):
        keep.append(data)
        data = data.ctypes.data
    shape_arr = (c_int64 * max(len(shape), 1))(*shape)
    keep.append(shape_arr)
    strides_arr = None
    if strides is not None:
        strides_arr = (c_int64 * max(len(strides), 1))(*strides)
        keep.append(strides_arr)
    t = DLTensor()
    t.data = data
    t.device = DLDevice(device, 0)
    t.ndim = len(shape) if ndim is None else ndim
    t.dtype = DLDataType(*dtype)
    t.shape = None if null_shape else ctypes.cast(shape_arr, POINTER(c_int64))
    t.strides = ctypes.cast(strides_arr, POINTER(c_int64)) if strides_arr is not None else None
    t.byte_offset = byte_offset

    fab = Fabricated(None, keep)

    def on_delete(_ptr):
        fab.deleted += 1

    cb = DELETER(on_delete)
    keep.append(cb)
    m: DLManagedTensor | DLManagedTensorVersioned
    if versioned:
        m = DLManagedTensorVersioned()
        m.version = DLPackVersion(*version)
        m.flags = flags
        m.dl_tensor = t
        default_name = b"dltensor_versioned"
    else:
        m = DLManagedTensor()
        m.dl_tensor = t
        default_name = b"dltensor"
    m.deleter = cb
    keep.append(m)
    cname = ctypes.create_string_buffer(default_name if name is None else name)
    keep.append(cname)
    fab.capsule = _new_capsule(ctypes.addressof(m), ctypes.addressof(cname), None)
    return fab
