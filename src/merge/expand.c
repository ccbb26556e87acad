/* LLaMA Pro block expansion (Wu et al. 2024, TencentARC's block_expansion.py): with L layers and N wanted,
 * split = L / (N - L), and after every split-th layer a copy of it is inserted whose output projections are
 * zero, so that the block adds nothing to the residual stream and the expanded model computes exactly what the
 * original did. The expansion is written as the passthrough merge it is: one slice per output layer, the
 * inserted ones with `scale` 0 on o_proj and down_proj (Llama family) or on c_proj (GPT-2: attn.c_proj and
 * mlp.c_proj, weights and biases). */
#include "merge_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The filters that silence a block's outputs, followed by scale 1 for everything else. */
static const char *const silenced[] = {"o_proj", "down_proj", "c_proj"};
#define N_SILENCED (sizeof silenced / sizeof *silenced)

static hone_status out_of_memory(void) { return hone_errorf(HONE_ERR_NOMEM, "out of memory"); }

/* Slice `i` of the config: layer `layer` of the model, silenced or not. */
static hone_status make_slice(merge_slice *s, const char *model, int layer, int silence) {
    s->n_sources = 1;
    if (!(s->sources = calloc(1, sizeof *s->sources)) || !(s->sources[0].model = strdup(model))) return out_of_memory();
    merge_source *src = s->sources;
    src->layer_range[0] = layer;
    src->layer_range[1] = layer + 1;
    src->has_range = 1;
    if (!silence) return HONE_OK;
    if (!(src->params.items = calloc(1, sizeof *src->params.items)) || !(src->params.items[0].name = strdup("scale")))
        return out_of_memory();
    src->params.n = 1;
    merge_setting *scale = &src->params.items[0].value;
    scale->kind = MERGE_SETTING_FILTERS;
    if (!(scale->conds = calloc(N_SILENCED + 1, sizeof *scale->conds))) return out_of_memory();
    scale->n_conds = N_SILENCED + 1;
    for (size_t i = 0; i <= N_SILENCED; i++) {
        scale->conds[i].value.kind = MERGE_SETTING_SCALAR;
        scale->conds[i].value.scalar = i < N_SILENCED ? 0.0 : 1.0;
        if (i < N_SILENCED && !(scale->conds[i].filter = strdup(silenced[i]))) return out_of_memory();
    }
    return HONE_OK;
}

static hone_status expansion_config(hone_merge_config **out, const char *model_dir, int layers, int num_layers) {
    hone_merge_config *c = calloc(1, sizeof *c);
    if (!c) return out_of_memory();
    *out = c;
    c->method = HONE_MERGE_PASSTHROUGH;
    c->dtype = c->out_dtype = -1;
    if (!(c->path = strdup("block expansion")) || !(c->slices = calloc((size_t)num_layers, sizeof *c->slices)))
        return out_of_memory();
    int split = layers / (num_layers - layers);
    for (int i = 0; i < layers; i++) {
        HONE_TRY(make_slice(&c->slices[c->n_slices++], model_dir, i, 0));
        if ((i + 1) % split == 0) HONE_TRY(make_slice(&c->slices[c->n_slices++], model_dir, i, 1));
    }
    return HONE_OK;
}

/* Every inserted layer must have had something silenced, or it would change the model's output. */
static hone_status check_silenced(const hone_merge_plan *p, const char *model_dir) {
    size_t zeroed = 0, inserted = 0;
    for (size_t i = 0; i < p->n_tensors; i++) {
        double s = p->tensors[i].pub.inputs[0].scale;
        zeroed += s == 0;
        inserted += !isnan(s);
    }
    if (inserted && !zeroed)
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s: no o_proj / down_proj (Llama family) or c_proj (GPT-2) tensors in its layers; block "
                           "expansion does not know which projections to zero for this architecture",
                           model_dir);
    return HONE_OK;
}

hone_status hone_expand(const char *model_dir, int num_layers, const hone_merge_options *o, hone_merge_summary *out) {
    char *config_path = hone_path_join(model_dir, "config.json"), *text = NULL;
    size_t n;
    int layers = 0;
    hone_status st = config_path ? hone_file_read(config_path, &text, &n) : out_of_memory();
    if (st == HONE_OK) st = merge_num_layers(text, config_path, &layers);
    free(text);
    free(config_path);
    HONE_TRY(st);
    int added = num_layers - layers;
    if (added <= 0 || added > layers || layers / (layers / added) != added)
        return hone_errorf(HONE_ERR_INVALID,
                           "%s has %d layers; LLaMA Pro expansion inserts a copy after every split-th layer, split = "
                           "L / (N - L), so it needs L < N <= 2L and L / split = N - L (e.g. N = %d or %d), not N = %d",
                           model_dir, layers, layers + 1, 2 * layers, num_layers);
    hone_merge_config *c = NULL;
    hone_merge_plan *p = NULL;
    st = expansion_config(&c, model_dir, layers, num_layers);
    if (st == HONE_OK) st = hone_merge_plan_new(&p, c, o);
    if (st == HONE_OK) st = check_silenced(p, model_dir);
    if (st == HONE_OK) st = hone_merge_plan_write(p, o, out);
    hone_merge_plan_free(p);
    hone_merge_config_free(c);
    return st;
}
