/* The trunk's per-layer hidden states after a forward: what transformers returns as output_hidden_states (the
 * embeddings, then the input of every later layer) for callers that read the residual stream between layers,
 * such as MoE gate initialisation from prompt hidden states. */
#include "model_internal.h"

const float *hone_model_layer_hidden(const hone_model *m, int layer) {
    /* without training the layers share two rotating buffers, so earlier layers' inputs are gone */
    if (!m->training || !m->resid || layer < 0 || layer > m->cfg.num_layers) return NULL;
    return m->resid[layer];
}
