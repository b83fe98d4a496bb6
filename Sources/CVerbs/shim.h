#ifndef CVERBS_SHIM_H
#define CVERBS_SHIM_H
// libibverbs and librdmacm as RDMASGE's IBVerbs backend sees them, plus plain C entry
// points for what Swift cannot call: function-like macros (ibv_query_port, ibv_reg_mr)
// and the union members of ibv_send_wr / ibv_wc whose anonymous nesting Swift imports
// awkwardly. Used only under the RDMA trait.
#include <endian.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

/// `ibv_query_port` is a macro over `___ibv_query_port`.
static inline int cverbs_query_port(struct ibv_context *context, uint8_t port, struct ibv_port_attr *attr) {
    return ibv_query_port(context, port, attr);
}

/// The `ibv_reg_mr` macro ends in `ibv_reg_mr_iova2` with the buffer's own address as
/// the I/O virtual address; this names that path with an explicit iova.
static inline struct ibv_mr *cverbs_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
                                                 unsigned int access) {
    return ibv_reg_mr_iova2(pd, addr, length, iova, access);
}

/// Sets the RDMA fields of a send request (`wr.rdma`, a member of an anonymous union).
static inline void cverbs_send_wr_set_rdma(struct ibv_send_wr *wr, uint64_t remote_addr, uint32_t rkey) {
    wr->wr.rdma.remote_addr = remote_addr;
    wr->wr.rdma.rkey = rkey;
}

/// Sets the immediate data of a send request, given in host order (the wire carries it big-endian).
static inline void cverbs_send_wr_set_imm(struct ibv_send_wr *wr, uint32_t host_order) {
    wr->imm_data = htobe32(host_order);
}

/// The immediate data of a completion in host order.
static inline uint32_t cverbs_wc_imm(const struct ibv_wc *wc) {
    return be32toh(wc->imm_data);
}

/// Whether a completion carries immediate data.
static inline int cverbs_wc_has_imm(const struct ibv_wc *wc) {
    return (wc->wc_flags & IBV_WC_WITH_IMM) != 0;
}

/// The file descriptor of an event channel, for a bounded wait with poll(2).
static inline int cverbs_event_channel_fd(const struct rdma_event_channel *channel) {
    return channel->fd;
}
/// `ibv_req_notify_cq` is a static inline over the provider's `req_notify_cq`.
static inline int cverbs_req_notify_cq(struct ibv_cq *cq, int solicited_only) {
    return ibv_req_notify_cq(cq, solicited_only);
}

/// The queue pair number an asynchronous event names (`element.qp`), or 0 when none.
static inline uint32_t cverbs_async_event_qp_num(const struct ibv_async_event *event) {
    return event->element.qp ? event->element.qp->qp_num : 0;
}

/// The port an asynchronous event names (`element.port_num`).
static inline uint8_t cverbs_async_event_port(const struct ibv_async_event *event) {
    return (uint8_t)event->element.port_num;
}
#endif
