/* The built-in synthetic instruction suite (hone/tasks.h): four tasks with exact answers, several phrasings each,
 * and test problems kept out of the training items. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/tasks.h"

static const char *const task_names[HONE_TASK_COUNT] = {"reverse", "sort", "add", "next"};

const char *hone_task_name(hone_task t) { return t >= 0 && t < HONE_TASK_COUNT ? task_names[t] : "?"; }

/* Every phrasing ends with the operands, so they sit at a fixed distance before the answer whatever the phrasing:
 * what a tiny model learns to attend to within a minute. */
static const char *const reverse_phrasings[] = {"Reverse: %s", "Write backwards: %s", "Spell in reverse: %s",
                                                "Turn around: %s"};
static const char *const sort_phrasings[] = {"Sort: %s", "In order: %s", "Sort ascending: %s",
                                             "Smallest first: %s"};
static const char *const add_phrasings[] = {"Add: %d + %d", "Sum: %d + %d", "Compute: %d + %d",
                                            "What is %d + %d"};
static const char *const next_phrasings[] = {"Next number after: %d", "Successor of: %d", "Count on from: %d",
                                             "One more than: %d"};

#define PHRASINGS 4

static size_t pick(hone_rng *rng, size_t n) { return (size_t)(hone_rng_u64(rng) % n); }

/* One generated problem: the prompt in the chosen phrasing, the answer, and the problem without its phrasing
 * (what train and test must not share). */
typedef struct {
    char prompt[128], answer[32], problem[32];
} task_draw;

static void draw_reverse(hone_rng *rng, task_draw *d) {
    char word[4];
    for (size_t i = 0; i < 3; i++) word[i] = (char)('a' + pick(rng, 26));
    word[3] = 0;
    for (size_t i = 0; i < 3; i++) d->answer[i] = word[2 - i];
    d->answer[3] = 0;
    snprintf(d->prompt, sizeof d->prompt, reverse_phrasings[pick(rng, PHRASINGS)], word);
    snprintf(d->problem, sizeof d->problem, "reverse %s", word);
}

static void draw_sort(hone_rng *rng, task_draw *d) {
    int count[10] = {0};
    char list[8];
    for (size_t i = 0; i < 3; i++) {
        const int digit = (int)pick(rng, 10);
        count[digit]++;
        list[2 * i] = (char)('0' + digit);
        list[2 * i + 1] = ' ';
    }
    list[5] = 0;
    size_t k = 0;
    for (int v = 0; v < 10; v++)
        for (int c = 0; c < count[v]; c++) d->answer[k++] = (char)('0' + v), d->answer[k++] = ' ';
    d->answer[k - 1] = 0;
    snprintf(d->prompt, sizeof d->prompt, sort_phrasings[pick(rng, PHRASINGS)], list);
    snprintf(d->problem, sizeof d->problem, "sort %s", list);
}

/* A two-digit number and a digit, not two digits: 900 problems instead of 100, so that the held-out sums are not
 * facts the model never saw but the units sums and carries of training problems in new combinations. */
static void draw_add(hone_rng *rng, task_draw *d) {
    const int a = 10 + (int)pick(rng, 90), b = (int)pick(rng, 10);
    snprintf(d->answer, sizeof d->answer, "%d", a + b);
    snprintf(d->prompt, sizeof d->prompt, add_phrasings[pick(rng, PHRASINGS)], a, b);
    snprintf(d->problem, sizeof d->problem, "add %d %d", a, b);
}

static void draw_next(hone_rng *rng, task_draw *d) {
    const int n = 10 + (int)pick(rng, 989);
    snprintf(d->answer, sizeof d->answer, "%d", n + 1);
    snprintf(d->prompt, sizeof d->prompt, next_phrasings[pick(rng, PHRASINGS)], n);
    snprintf(d->problem, sizeof d->problem, "next %d", n);
}

static void (*const draws[HONE_TASK_COUNT])(hone_rng *, task_draw *) = {draw_reverse, draw_sort, draw_add,
                                                                          draw_next};

/* A set of 64-bit problem hashes (open addressing, linear probing; 0 stands for an empty slot). Two problems with
 * the same FNV-1a hash count as one: at worst an extra training item is redrawn. */
typedef struct {
    uint64_t *slots;
    size_t mask;
} problem_set;

static uint64_t problem_hash(const char *problem) {
    uint64_t h = hone_fnv1a64(problem, strlen(problem));
    return h ? h : 1;
}

static int problem_set_contains(const problem_set *s, uint64_t h) {
    for (size_t i = h & s->mask; s->slots[i]; i = (i + 1) & s->mask)
        if (s->slots[i] == h) return 1;
    return 0;
}

static void problem_set_add(problem_set *s, uint64_t h) {
    size_t i = h & s->mask;
    while (s->slots[i] && s->slots[i] != h) i = (i + 1) & s->mask;
    s->slots[i] = h;
}

static hone_status item_set(hone_task_item *it, hone_task t, const task_draw *d) {
    it->task = t;
    it->prompt = strdup(d->prompt);
    it->answer = strdup(d->answer);
    return it->prompt && it->answer ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
}

void hone_task_set_free(hone_task_set *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].prompt);
        free(s->items[i].answer);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}

/* Draws per task until it has `want` items whose problem is not in `avoid`; with `distinct`, the items' problems
 * join `avoid` (so they are distinct among themselves too). Gives up after 1000 draws per item asked for. */
static hone_status fill(hone_task_set *set, size_t want, hone_rng *rng, problem_set *avoid, int distinct) {
    for (size_t i = 0; i < want * HONE_TASK_COUNT; i++) {
        const hone_task t = (hone_task)(i % HONE_TASK_COUNT);
        task_draw d;
        uint64_t h;
        size_t tries = 0;
        do {
            if (tries++ == 1000 * want)
                return hone_errorf(HONE_ERR_INVALID,
                                   "task '%s' has too few distinct problems for %zu items kept apart from the test "
                                   "items (ask for fewer)",
                                   task_names[t], want);
            draws[t](rng, &d);
            h = problem_hash(d.problem);
        } while (problem_set_contains(avoid, h));
        if (distinct) problem_set_add(avoid, h);
        HONE_TRY(item_set(&set->items[set->n++], t, &d));
    }
    return HONE_OK;
}

hone_status hone_task_suite(uint64_t seed, size_t n_train, size_t n_test, hone_task_set *train, hone_task_set *test) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (n_test > (SIZE_MAX >> 8) || n_train > (SIZE_MAX >> 8))
        return hone_errorf(HONE_ERR_INVALID, "task suite of %zu + %zu items per task is too large", n_train, n_test);
    size_t cap = 16;
    while (cap < 4 * HONE_TASK_COUNT * n_test) cap *= 2;
    problem_set held_out = {calloc(cap, sizeof(uint64_t)), cap - 1};
    train->items = calloc(n_train * HONE_TASK_COUNT + 1, sizeof(hone_task_item));
    test->items = calloc(n_test * HONE_TASK_COUNT + 1, sizeof(hone_task_item));
    hone_status st = held_out.slots && train->items && test->items ? HONE_OK
                                                                   : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_rng test_rng = hone_rng_new(seed, 0x74657374 /* "test" */), train_rng = hone_rng_new(seed, 0x7472616e);
    if (st == HONE_OK) st = fill(test, n_test, &test_rng, &held_out, 1);
    if (st == HONE_OK) st = fill(train, n_train, &train_rng, &held_out, 0);
    free(held_out.slots);
    if (st != HONE_OK) {
        hone_task_set_free(train);
        hone_task_set_free(test);
    }
    return st;
}

static hone_status message_set(hone_message *m, const char *role, const char *content) {
    m->role = strdup(role);
    m->content = strdup(content);
    m->weight = -1;
    return m->role && m->content ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
}

hone_status hone_task_item_example(const hone_task_item *it, hone_example *out) {
    memset(out, 0, sizeof *out);
    out->kind = HONE_EXAMPLE_SFT;
    hone_conversation *c = &out->conversation;
    c->messages = calloc(2, sizeof *c->messages);
    if (!c->messages) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    c->n_messages = 2;
    hone_status st = message_set(&c->messages[0], "user", it->prompt);
    if (st == HONE_OK) st = message_set(&c->messages[1], "assistant", it->answer);
    if (st != HONE_OK) hone_example_free(out);
    return st;
}

hone_status hone_task_set_write_jsonl(const hone_task_set *s, const char *path) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) return hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", path);
    int ok = 1;
    for (size_t i = 0; ok && i < s->n; i++) {
        json_t *row = json_pack("{s:s, s:s, s:s, s:s}", "instruction", s->items[i].prompt, "input", "", "output",
                                s->items[i].answer, "task", hone_task_name(s->items[i].task));
        ok = row && json_dumpf(row, f, JSON_PRESERVE_ORDER) == 0 && fputc('\n', f) != EOF;
        json_decref(row);
    }
    ok &= fclose(f) == 0;
    hone_status st = ok ? hone_file_write_atomic(path, text, size)
                        : hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", path);
    free(text);
    return st;
}
