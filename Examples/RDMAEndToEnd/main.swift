// The end-to-end suite that runs on a real RDMA device or soft-RoCE (rxe):
//     Scripts/rxe/run-e2e .build-rxe/release/rdma-e2e
// It needs libibverbs, so it does its work only when built with `--traits RDMA`.
#if RDMA
#else
print("rdma-e2e needs the RDMA trait: swift build -c release --traits RDMA --product rdma-e2e")
print("0 passed, 0 failed, 1 skipped")
#endif
