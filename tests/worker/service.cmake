# The worker's gRPC side: conversion/validation, KV event fan-out, the engine
# loop, and the services in-process over a real channel.
tessera_add_test(proto_convert_test SOURCES proto_convert_test.cc LIBS tessera_worker_service
                 LABELS unit)
tessera_add_test(kv_event_hub_test SOURCES kv_event_hub_test.cc LIBS tessera_worker_service
                 LABELS unit)
tessera_add_test(engine_loop_test SOURCES engine_loop_test.cc LIBS tessera_worker_service
                 LABELS unit)
tessera_add_test(worker_service_test SOURCES worker_service_test.cc LIBS tessera_worker_service
                 LABELS unit)
tessera_add_test(registration_test SOURCES registration_test.cc LIBS tessera_worker_service
                 LABELS unit)
tessera_add_test(request_limits_test SOURCES request_limits_test.cc LIBS tessera_worker_service
                 LABELS unit)
tessera_add_test(output_processor_test SOURCES output_processor_test.cc LIBS tessera_engine
                 LABELS unit)
tessera_add_test(output_processor_stop_test SOURCES output_processor_stop_test.cc
                 LIBS tessera_engine LABELS unit)
tessera_add_test(parallel_sampling_service_test SOURCES parallel_sampling_service_test.cc
                 LIBS tessera_worker_service LABELS unit)
# The worker's metrics, stats line and loading progress (promtool: skips without it unless CI).
tessera_add_test(worker_metrics_test SOURCES worker_metrics_test.cc LIBS tessera_worker_service
                 LABELS unit)
