// Test processes stay quiet unless PAYSTEP_LOG_LEVEL asks otherwise: handler loggers
// (Powertools) read their level when first imported, which can be before a runtime starts.
if (!process.env.PAYSTEP_LOG_LEVEL) process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
