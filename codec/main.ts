/** Codec server process: `node dist/codec/main.js`. Decodes (and encodes) payloads for the Temporal Web UI and CLI. */
import type { PayloadCodec } from '@temporalio/common';
import { loadConfig, type Config } from '../config';
import { createLogger, logFatal, type Logger } from '../observability/logger';
import { AesGcmPayloadCodec } from '../temporal/codec';
import { createCodecServer } from './app';

/** Payloads pass through as they are: only the demo without payload keys (config refuses that elsewhere). */
const PLAIN_CODEC: PayloadCodec = { encode: async (p) => p, decode: async (p) => p };

function codecOf(config: Config, logger: Logger): PayloadCodec {
  if (config.payloadKeys.length > 0) return new AesGcmPayloadCodec(config.payloadKeys);
  logger.warn('no payload keys (demo): payloads pass through the codec server as they are');
  return PLAIN_CODEC;
}

async function main() {
  const config = loadConfig();
  const logger = createLogger('codec', config.logLevel);
  // Even in the demo the codec server is never open: it would decode every case for anyone.
  if (!config.codec.token) throw new Error("K2_CODEC_TOKEN: the codec server needs the operators' token");
  const server = createCodecServer({ codec: codecOf(config, logger), settings: config.codec, logger });
  server.listen(config.codec.port, config.codec.host, () => {
    logger.info('codec server ready', {
      url: `http://${config.codec.host}:${config.codec.port}`,
      corsOrigins: config.codec.corsOrigins,
      keys: config.payloadKeys.map((k) => k.id),
    });
  });
  const stop = (signal: string) => {
    logger.info('codec server stopping', { signal });
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err) => {
  logFatal('codec', 'codec server failed', err);
  process.exit(1);
});
