/*
 * Decode one rectangle of a JPEG with libjpeg(-turbo), and nothing below it.
 *
 * libjpeg-turbo (1.5 and later) can skip rows without the inverse DCT, upsampling or colour conversion
 * (jpeg_skip_scanlines) and decode only a band of columns (jpeg_crop_scanline); decoding stops after the
 * rectangle's last row. The entropy decoding of the rows above the rectangle cannot be skipped (a baseline JPEG
 * has no row index), so this saves the other stages' share of every row outside the rectangle.
 *
 * The rectangle's pixels equal a full decode's, bit for bit: the band asked of libjpeg reaches one pixel past
 * the rectangle on either side, so chroma upsampling at the band's edges never replicates an edge pixel into
 * the rectangle (and see columns_crop_exactly). tests/test_data_crop_decode.py checks this against Pillow's
 * full decode.
 *
 * region_size(data) -> (width, height): the size in the header of a JPEG decode_region can decode (markers only,
 * no pixels); ValueError otherwise.
 * decode_region(data, left, top, width, height, scale=1) -> bytearray of height * width * 3 (RGB, row-major): the
 * rectangle of the image decoded at 1/scale (1, 2, 4 or 8; libjpeg's DCT scaling, as Pillow's Image.draft), in
 * that image's pixels. Raises ValueError for anything but a three-component (YCbCr or RGB) JPEG, a rectangle
 * outside the image, or any error or warning from libjpeg up to the rectangle's last row (corrupt data, a file
 * cut short before that row): the caller then decodes the image with Pillow. Data after the rectangle's last row
 * is never read, so a file cut short below it decodes, as Pillow's decode of the rows down to the rectangle did.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#if !defined(LIBJPEG_TURBO_VERSION_NUMBER) || LIBJPEG_TURBO_VERSION_NUMBER < 1005000
#error "smmix_hf's region decoder needs libjpeg-turbo 1.5 or later (jpeg_skip_scanlines, jpeg_crop_scanline)"
#endif

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf escape;
    char message[JMSG_LENGTH_MAX];
} ErrorTrap;

static void trap_error(j_common_ptr info) {
    ErrorTrap *trap = (ErrorTrap *)info->err;
    (*info->err->format_message)(info, trap->message);
    longjmp(trap->escape, 1);
}

static void count_warning(j_common_ptr info, int level) {
    /* level -1 is a warning (corrupt data, premature end); trace messages (level >= 0) are ignored. */
    if (level < 0) info->err->num_warnings++;
}

typedef struct {
    const unsigned char *data;
    size_t size;
    JDIMENSION left, top, width, height, scale;
    unsigned char *out;
    char message[JMSG_LENGTH_MAX];
} Request;

/*
 * Whether jpeg_crop_scanline gives every component the columns it needs. libjpeg-turbo 2.1.5 (Debian 12's; no
 * upstream report found) sizes each component's band from its sampling factor alone. Under DCT scaling a
 * subsampled component may be given a larger IDCT than the luma's; where that enlargement does not exactly undo
 * its horizontal subsampling (4:1:0 at 1/2 and 1/4 scale), an edge column is repeated into the band. Such files
 * are decoded at full width (rows are still skipped). tests/test_data_crop_decode.py keeps a 4:1:0 file for it.
 */
static int columns_crop_exactly(j_decompress_ptr info) {
    for (int index = 0; index < info->num_components; index++) {
        jpeg_component_info *component = &info->comp_info[index];
        if (component->DCT_scaled_size != info->min_DCT_scaled_size &&
            component->h_samp_factor * component->DCT_scaled_size !=
                info->max_h_samp_factor * info->min_DCT_scaled_size)
            return 0;
    }
    return 1;
}

/* Points libjpeg's errors at trap: an error escapes with longjmp (set up by the caller before it creates the
 * decompressor, as libjpeg's example does), a warning is counted. */
static void trap_errors(j_decompress_ptr info, ErrorTrap *trap) {
    info->err = jpeg_std_error(&trap->base);
    trap->base.error_exit = trap_error;
    trap->base.emit_message = count_warning;
    trap->message[0] = '\0';
}

/* Reads the header; 0 with *width and *height set to the size at 1/scale of a three-component YCbCr or RGB JPEG,
 * else -1 and a message. */
static int read_size(const unsigned char *data, size_t size, unsigned scale, JDIMENSION *width, JDIMENSION *height,
                     char *message) {
    struct jpeg_decompress_struct info = {0};
    ErrorTrap trap;
    trap_errors(&info, &trap);
    if (setjmp(trap.escape)) {
        jpeg_destroy_decompress(&info);
        snprintf(message, JMSG_LENGTH_MAX, "libjpeg: %s", trap.message);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    int plain = info.num_components == 3 && (info.jpeg_color_space == JCS_YCbCr || info.jpeg_color_space == JCS_RGB);
    info.scale_num = 1;
    info.scale_denom = scale;
    jpeg_calc_output_dimensions(&info);
    *width = info.output_width;
    *height = info.output_height;
    jpeg_destroy_decompress(&info);
    if (!plain) {
        snprintf(message, JMSG_LENGTH_MAX, "not a three-component YCbCr or RGB JPEG");
        return -1;
    }
    return 0;
}

/* Runs without the GIL: no Python API in here. decode_region has checked the header and the rectangle with
 * read_size. Returns 0 on success, -1 with request->message set. */
static int decode_into(Request *request) {
    struct jpeg_decompress_struct info = {0};
    ErrorTrap trap;
    JSAMPLE *volatile band = NULL;

    trap_errors(&info, &trap);
    if (setjmp(trap.escape)) {
        jpeg_destroy_decompress(&info);
        free(band);
        snprintf(request->message, sizeof request->message, "libjpeg: %s", trap.message);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, request->data, (unsigned long)request->size);
    jpeg_read_header(&info, TRUE);
    info.out_color_space = JCS_RGB;
    info.scale_num = 1;
    info.scale_denom = request->scale;
    jpeg_start_decompress(&info);

    /* One pixel of context on either side, then libjpeg widens the band to whole iMCU columns on the left. */
    JDIMENSION first = request->left > 0 ? request->left - 1 : 0;
    JDIMENSION last = request->left + request->width + 1;
    if (last > info.output_width) last = info.output_width;
    JDIMENSION band_left = first, band_width = last - first;
    if (band_width < info.output_width && columns_crop_exactly(&info)) {
        jpeg_crop_scanline(&info, &band_left, &band_width);
    } else {
        band_left = 0;
        band_width = info.output_width;
    }
    if (request->top > 0) jpeg_skip_scanlines(&info, request->top);

    band = malloc((size_t)info.output_width * 3);
    if (band == NULL) {
        jpeg_destroy_decompress(&info);
        snprintf(request->message, sizeof request->message, "out of memory");
        return -1;
    }
    size_t offset = (size_t)(request->left - band_left) * 3, row_bytes = (size_t)request->width * 3;
    for (JDIMENSION row = 0; row < request->height; row++) {
        JSAMPROW rows[1] = {band};
        if (jpeg_read_scanlines(&info, rows, 1) != 1) {
            snprintf(trap.message, sizeof trap.message, "the image ended before the rectangle's last row");
            longjmp(trap.escape, 1);
        }
        memcpy(request->out + (size_t)row * row_bytes, band + offset, row_bytes);
    }
    if (trap.base.num_warnings > 0) {
        snprintf(trap.message, sizeof trap.message, "corrupt or truncated data");
        longjmp(trap.escape, 1);
    }
    free(band);
    band = NULL;
    jpeg_abort_decompress(&info);
    jpeg_destroy_decompress(&info);
    return 0;
}

static PyObject *decode_region(PyObject *module, PyObject *args) {
    Py_buffer data;
    int left, top, width, height, scale = 1;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*iiii|i:decode_region", &data, &left, &top, &width, &height, &scale)) return NULL;
    if (left < 0 || top < 0 || width <= 0 || height <= 0) {
        PyBuffer_Release(&data);
        PyErr_Format(PyExc_ValueError, "an empty or negative rectangle: left %d, top %d, width %d, height %d", left,
                     top, width, height);
        return NULL;
    }
    if (scale != 1 && scale != 2 && scale != 4 && scale != 8) {
        PyBuffer_Release(&data);
        PyErr_Format(PyExc_ValueError, "scale must be 1, 2, 4 or 8, got %d", scale);
        return NULL;
    }
    /* The rectangle is checked against the header before its pixels are allocated. */
    JDIMENSION image_width, image_height;
    char message[JMSG_LENGTH_MAX];
    if (read_size((const unsigned char *)data.buf, (size_t)data.len, (unsigned)scale, &image_width, &image_height,
                  message) != 0) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, message);
        return NULL;
    }
    if ((size_t)left + (size_t)width > image_width || (size_t)top + (size_t)height > image_height) {
        PyBuffer_Release(&data);
        PyErr_Format(PyExc_ValueError, "the rectangle reaches outside the %ux%u image", (unsigned)image_width,
                     (unsigned)image_height);
        return NULL;
    }
    if ((size_t)width > (size_t)PY_SSIZE_T_MAX / 3 / (size_t)height) {
        PyBuffer_Release(&data);
        return PyErr_NoMemory();
    }
    PyObject *out = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)width * height * 3);
    if (out == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    Request request = {
        .data = (const unsigned char *)data.buf,
        .size = (size_t)data.len,
        .left = (JDIMENSION)left,
        .top = (JDIMENSION)top,
        .width = (JDIMENSION)width,
        .height = (JDIMENSION)height,
        .scale = (JDIMENSION)scale,
        .out = (unsigned char *)PyByteArray_AS_STRING(out),
    };
    int status;
    Py_BEGIN_ALLOW_THREADS status = decode_into(&request);
    Py_END_ALLOW_THREADS PyBuffer_Release(&data);
    if (status != 0) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_ValueError, request.message);
        return NULL;
    }
    return out;
}

static PyObject *region_size(PyObject *module, PyObject *args) {
    Py_buffer data;
    JDIMENSION width = 0, height = 0;
    char message[JMSG_LENGTH_MAX];
    (void)module;
    if (!PyArg_ParseTuple(args, "y*:region_size", &data)) return NULL;
    int status = read_size((const unsigned char *)data.buf, (size_t)data.len, 1, &width, &height, message);
    PyBuffer_Release(&data);
    if (status != 0) {
        PyErr_SetString(PyExc_ValueError, message);
        return NULL;
    }
    return Py_BuildValue("(II)", (unsigned int)width, (unsigned int)height);
}

static PyMethodDef methods[] = {
    {"region_size", region_size, METH_VARARGS,
     "region_size(data) -> (width, height) of a JPEG that decode_region can decode; ValueError otherwise."},
    {"decode_region", decode_region, METH_VARARGS,
     "decode_region(data, left, top, width, height, scale=1) -> RGB bytearray of the rectangle of the image decoded "
     "at 1/scale, height * width * 3."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_jpeg_region",
    .m_doc = "Decode one rectangle of a JPEG with libjpeg-turbo.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__jpeg_region(void) {
    PyObject *module = PyModule_Create(&module_definition);
    if (module != NULL) PyModule_AddIntConstant(module, "LIBJPEG_TURBO_VERSION_NUMBER", LIBJPEG_TURBO_VERSION_NUMBER);
    return module;
}
