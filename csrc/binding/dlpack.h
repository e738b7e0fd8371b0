/* The DLPack C ABI, as far as parewire consumes it.
 *
 * Written from the open specification (dmlc/dlpack, v0.8 legacy struct and
 * v1.x versioned struct); only the members and codes used here are named.
 */
#ifndef PAREWIRE_DLPACK_H
#define PAREWIRE_DLPACK_H

#include <stdint.h>

enum { PW_DL_CPU = 1, PW_DL_CUDA = 2, PW_DL_CUDA_HOST = 3 };

enum {
    PW_DL_INT = 0,
    PW_DL_UINT = 1,
    PW_DL_FLOAT = 2,
    PW_DL_OPAQUE = 3,
    PW_DL_BFLOAT = 4,
    PW_DL_COMPLEX = 5,
    PW_DL_BOOL = 6
    /* 7.. : the float8 / float4 family of DLPack 1.1 */
};

#define PW_DL_FLAG_READ_ONLY (1ULL << 0)
#define PW_DL_MAJOR_VERSION 1

typedef struct {
    int32_t device_type;
    int32_t device_id;
} pw_dl_device;

typedef struct {
    uint8_t code;
    uint8_t bits;
    uint16_t lanes;
} pw_dl_dtype;

typedef struct {
    void *data;
    pw_dl_device device;
    int32_t ndim;
    pw_dl_dtype dtype;
    int64_t *shape;
    int64_t *strides; /* in elements; NULL means compact row-major */
    uint64_t byte_offset;
} pw_dl_tensor;

/* capsule "dltensor" */
typedef struct pw_dl_managed {
    pw_dl_tensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct pw_dl_managed *self);
} pw_dl_managed;

typedef struct {
    uint32_t major;
    uint32_t minor;
} pw_dl_version;

/* capsule "dltensor_versioned" */
typedef struct pw_dl_managed_versioned {
    pw_dl_version version;
    void *manager_ctx;
    void (*deleter)(struct pw_dl_managed_versioned *self);
    uint64_t flags;
    pw_dl_tensor dl_tensor;
} pw_dl_managed_versioned;

#endif
