#ifndef CVERBS_SHIM_H
#define CVERBS_SHIM_H
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#endif
