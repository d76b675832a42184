// Test processes stay quiet unless PAYSTEP_LOG_LEVEL asks otherwise: handler loggers
// (Powertools) read their level when first imported, which can be before a runtime starts.
if (!process.env.PAYSTEP_LOG_LEVEL) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';

// Many tests time processor requests out on purpose (a few hundred ms) on a loaded machine: the
// circuit breaker would then send later payments elsewhere. Tests about the breaker turn it on.
if (!process.env.PAYSTEP_CIRCUIT_BREAKER) process.env.PAYSTEP_CIRCUIT_BREAKER = 'off';
