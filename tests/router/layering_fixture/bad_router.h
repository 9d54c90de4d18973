// Test data for router_layering_check_detects_violations: a router file that
// reaches into the worker. Never compiled.
#pragma once
#include "worker/engine/engine.h"
