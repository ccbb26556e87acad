/* hone/settings.h — a command's configuration: a YAML file (--config FILE.yaml) plus command-line flags.
 *
 * A flag is the YAML key with '-' for '_' (--learning-rate 2e-5 == learning_rate: 2e-5); flags override
 * the file; unknown keys are errors with a did-you-mean; values are type-checked when parsed, so the getters
 * cannot fail. List values are comma-separated on the command line and YAML sequences (or comma-separated
 * strings) in the file. docs/CONFIG.md states the rules for users.
 *
 *     static const hone_key_spec keys[] = {
 *         {"model", HONE_KEY_STRING, NULL, "model folder"},
 *         {"learning_rate", HONE_KEY_FLOAT, "3e-4", "peak learning rate"},
 *     };
 *     hone_settings *s;
 *     if (hone_settings_parse(&s, keys, 2, argc, argv) != HONE_OK) die(hone_error());
 *     double lr = hone_settings_float(s, "learning_rate");
 */
#ifndef HONE_SETTINGS_H
#define HONE_SETTINGS_H

#include "hone/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RECORDS: a list whose items are plain values or flat mappings, as axolotl's `datasets:` list
 *     datasets:
 *       - data/a.json                       # a plain item
 *       - {path: data/b.json, weight: 2}    # a mapping item (block style works too)
 * On the command line it is a comma-separated list of plain items. The keys of a mapping item are checked by the
 * command against its own table (hone_settings_check_record), since they differ from command to command. */
typedef enum {
    HONE_KEY_STRING,
    HONE_KEY_INT,
    HONE_KEY_FLOAT,
    HONE_KEY_BOOL,
    HONE_KEY_LIST,
    HONE_KEY_RECORDS
} hone_key_type;

typedef struct {
    const char *name;          /* YAML spelling, with underscores */
    hone_key_type type;
    const char *default_value; /* as it would be written on the command line; NULL = no default */
    const char *help;
} hone_key_spec;

typedef struct hone_settings hone_settings;

/* argv[0] is the first argument after the command name (--help is the caller's business). Accepts
 * `--key value`, `--key=value` and the underscore spelling `--learning_rate`; a bool flag followed by
 * nothing or by another flag means true; a flag given twice keeps the last value. `--config FILE` loads
 * FILE first, wherever it stands. Positional arguments, unknown keys (with a did-you-mean), duplicate
 * keys in the file and ill-typed values are errors naming the flag or FILE:LINE. In the file, an empty
 * value, ~ or null leaves the key to its default.
 * `specs` is kept, not copied: it must outlive the settings (command tables are static). A default that
 * does not parse as its type is a programming error (HONE_ASSERT). */
hone_status hone_settings_parse(hone_settings **out, const hone_key_spec *specs, size_t n_specs, int argc,
                                char **argv);
void hone_settings_free(hone_settings *s);

/* Getters take the key's YAML spelling; a key the table lacks is a programming error (HONE_ASSERT), and so is
 * hone_settings_int/float/bool on a key of another type or with no value and no default (check with
 * hone_settings_require or hone_settings_is_set first). */
int hone_settings_is_set(const hone_settings *s, const char *key); /* given in the file or on the command line */
/* The text as given, for any type (a list's items joined with ','; RECORDS: the items as a JSON array); NULL when
 * unset and no default. */
const char *hone_settings_str(const hone_settings *s, const char *key);
int64_t hone_settings_int(const hone_settings *s, const char *key);
double hone_settings_float(const hone_settings *s, const char *key);
int hone_settings_bool(const hone_settings *s, const char *key);
/* List values: count and items (NULL/0 when unset and no default). */
size_t hone_settings_list(const hone_settings *s, const char *key, const char *const **items);
/* RECORDS values. An item is a plain value (scalar) or a mapping of keys to plain values (fields, in file order;
 * a key given twice in one item is a parse error, and a key with a null value is left out). */
typedef struct {
    const char *name;  /* the item's key as written */
    const char *value; /* as written */
    int line;          /* 1-based line in the config file */
} hone_settings_field;

typedef struct {
    const char *scalar; /* a plain item; NULL for a mapping */
    const hone_settings_field *fields;
    size_t n_fields;
    int line; /* line of the item in the config file; 0 for an item given on the command line */
} hone_settings_record;

/* The --config file that was read, for messages about its lines; NULL when none. */
const char *hone_settings_config_path(const hone_settings *s);
/* The items of a RECORDS key (NULL/0 when unset and no default). */
size_t hone_settings_records(const hone_settings *s, const char *key, const hone_settings_record **items);
/* Checks the fields of item `index` of `key` against specs (their names and types): an unknown name is an error
 * with a did-you-mean, an ill-typed value an error naming the value; both as "FILE:LINE: key item N: ...". A
 * plain item has no fields and passes. */
hone_status hone_settings_check_record(const hone_settings *s, const char *key, size_t index,
                                       const hone_key_spec *specs, size_t n_specs);
/* A field of a checked record: its text, or NULL when absent. The typed getters return `fallback` when the field
 * is absent; a value that does not parse as the type is a programming error (check the record first). */
const char *hone_settings_record_str(const hone_settings_record *r, const char *name);
int64_t hone_settings_record_int(const hone_settings_record *r, const char *name, int64_t fallback);
double hone_settings_record_float(const hone_settings_record *r, const char *name, double fallback);
int hone_settings_record_bool(const hone_settings_record *r, const char *name, int fallback);

/* Fails with "missing required option --key" when the key has no value. */
hone_status hone_settings_require(const hone_settings *s, const char *key);

/* The resolved configuration as one line of JSON (free with free()): every key with a value, given or
 * default, in table order, typed (numbers, booleans, arrays of strings; RECORDS: arrays of strings and objects of
 * strings). NULL when out of memory. */
char *hone_settings_to_json(const hone_settings *s);
/* Prints one aligned line per key, after one for --config, for --help:
 *     "  --learning-rate FLOAT   peak learning rate (default: 3e-4)" */
void hone_settings_print_help(const hone_key_spec *specs, size_t n_specs, FILE *out);

/* Damerau-Levenshtein distance (optimal string alignment: a swap of two neighbours counts as one edit, which is
 * the commonest typo in option names), for did-you-mean suggestions. SIZE_MAX when out of memory. */
size_t hone_edit_distance(const char *a, const char *b);

#ifdef __cplusplus
}
#endif
#endif
