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
# Hung-rank detection: the adaptive bound (fake clock), the watchdog thread, the
# worker's health state, and the engine loop with a follower hung in a heartbeat.
tessera_add_test(stall_detector_test SOURCES stall_detector_test.cc LIBS tessera_worker_service
                 LABELS unit)
tessera_add_test(step_watchdog_test SOURCES step_watchdog_test.cc LIBS tessera_worker_service
                 LABELS unit TIMEOUT 60)
tessera_add_test(serving_state_test SOURCES serving_state_test.cc LIBS tessera_worker_service
                 LABELS unit)
tessera_add_test(engine_loop_stall_test SOURCES engine_loop_stall_test.cc
                 LIBS tessera_worker_service LABELS unit TIMEOUT 120)
# tessera-worker's --stall-* flags and its watchdog wiring (hang_detection.cc
# belongs to the binary, so the test compiles it in).
tessera_add_test(hang_detection_test SOURCES hang_detection_test.cc
                 ${PROJECT_SOURCE_DIR}/worker/hang_detection.cc
                 LIBS tessera_worker_service absl::flags absl::flags_reflection LABELS unit)
