// Bridging header for smoke.swift: libibverbs as Swift sees it, plus plain C entry
// points for the two calls verbs.h defines as macros (Swift cannot call a
// function-like macro): ibv_query_port and ibv_reg_mr.
#include <infiniband/verbs.h>

static inline int smoke_query_port(struct ibv_context *context, uint8_t port,
                                   struct ibv_port_attr *attr) {
    return ibv_query_port(context, port, attr);
}

static inline struct ibv_mr *smoke_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
                                          int access) {
    return ibv_reg_mr(pd, addr, length, access);
}
