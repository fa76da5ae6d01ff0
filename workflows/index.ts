/** Every workflow the worker runs (the bundle entry point). */
export * from './case';
export * from './gkb-batch';
