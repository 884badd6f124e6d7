/* prototxt.c: protobuf text format for any protobuf-c message, driven by its descriptors.
 *
 * protobuf-c has no text format, so this is ptcc's: one generic printer instead of code per
 * Caffe message.  Fields come out in field-number order (as protobuf's own TextFormat prints
 * them), optional fields only when present, enums by name, floats with 9 significant digits and
 * doubles with 17 (both read back exactly), strings C-escaped with octal escapes for every byte
 * that is not printable ASCII.
 */
#include "net.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#define MEMBER(msg, off) ((const char *)(msg) + (off))

static void
indent(FILE *fp, int depth)
{
	for (int i = 0; i < depth; i++)
		fputs("  ", fp);
}

void
prototxt_put_string(FILE *fp, const char *str, size_t len)
{
	const uint8_t *s = (const uint8_t *)str;

	fputc('"', fp);
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = s[i];
		switch (ch) {
		case '\n': fputs("\\n", fp); break;
		case '\r': fputs("\\r", fp); break;
		case '\t': fputs("\\t", fp); break;
		case '"': fputs("\\\"", fp); break;
		case '\'': fputs("\\'", fp); break;
		case '\\': fputs("\\\\", fp); break;
		default:
			if (ch < 0x20 || ch >= 0x7f)
				fprintf(fp, "\\%03o", ch);
			else
				fputc(ch, fp);
		}
	}
	fputc('"', fp);
}

/* Text format spells non-finite numbers inf, -inf and nan; everything else in C's %g. */
static void
put_real(FILE *fp, double v, int digits)
{
	if (isnan(v))
		fputs("nan", fp);
	else if (isinf(v))
		fputs(v < 0 ? "-inf" : "inf", fp);
	else
		fprintf(fp, "%.*g", digits, v);
}

/* What one write needs: the file, the fields to leave out. */
typedef struct Printer {
	FILE *fp;
	PrototxtSkip *skip;
} Printer;

static void put_message(const Printer *pr, const ProtobufCMessage *msg, int depth);

/* One scalar or message element of a field; `p` points at the element. */
static void
put_element(const Printer *pr, const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
	FILE *fp = pr->fp;

	indent(fp, depth);
	fputs(f->name, fp);
	if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		fputs(" {\n", fp);
		put_message(pr, *(const ProtobufCMessage *const *)p, depth + 1);
		indent(fp, depth);
		fputs("}\n", fp);
		return;
	}
	fputs(": ", fp);
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(fp, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(fp, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(fp, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(fp, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		put_real(fp, *(const float *)p, 9);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		put_real(fp, *(const double *)p, 17);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", fp);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		if (ev)
			fputs(ev->name, fp);
		else
			fprintf(fp, "%d", v);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)p;
		prototxt_put_string(fp, s, strlen(s));
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		prototxt_put_string(fp, (const char *)b->data, b->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		break;
	}
	fputc('\n', fp);
}

static size_t
element_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

/* Is an optional (or oneof) field present?  The rules of protobuf-c's own packer. */
static int
present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const void *member = MEMBER(msg, f->offset);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)MEMBER(msg, f->quantifier_offset) == f->id;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
		const void *ptr = *(const void *const *)member;
		return ptr != NULL && ptr != f->default_value;
	}
	return *(const protobuf_c_boolean *)MEMBER(msg, f->quantifier_offset);
}

bool
prototxt_field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	return present(msg, f) != 0;
}

static void
put_message(const Printer *pr, const ProtobufCMessage *msg, int depth)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (pr->skip && pr->skip(f))
			continue;
		const void *member = MEMBER(msg, f->offset);
		switch (f->label) {
		case PROTOBUF_C_LABEL_REQUIRED:
			put_element(pr, f, member, depth);
			break;
		case PROTOBUF_C_LABEL_OPTIONAL:
		case PROTOBUF_C_LABEL_NONE:
			if (present(msg, f))
				put_element(pr, f, member, depth);
			break;
		case PROTOBUF_C_LABEL_REPEATED: {
			size_t n = *(const size_t *)MEMBER(msg, f->quantifier_offset);
			const char *array = *(const char *const *)member;
			size_t size = element_size(f);
			for (size_t k = 0; k < n; k++)
				put_element(pr, f, array + k * size, depth);
			break;
		}
		}
	}
}

void
prototxt_write(FILE *fp, const ProtobufCMessage *msg, PrototxtSkip *skip)
{
	Printer pr = {fp, skip};

	put_message(&pr, msg, 0);
}

void
prototxt_write_field(FILE *fp, const char *name, const ProtobufCMessage *msg, PrototxtSkip *skip)
{
	Printer pr = {fp, skip};

	fprintf(fp, "%s {\n", name);
	put_message(&pr, msg, 1);
	fputs("}\n", fp);
}
