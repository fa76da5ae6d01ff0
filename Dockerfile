# syntax=docker/dockerfile:1
#
# One K2 image for every K2 process; the command picks which one runs:
#   node --max-old-space-size=384 dist/worker/main.js (the heap bound of worker/heap.ts) | node dist/api/main.js
#   | node dist/simulators/{abs,gkb,eko}/main.js
# Used by docker-compose.yml (k2-worker, k2-api and the simulators profile).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: all dependencies, compile TypeScript to dist/ -------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Toolchain for native modules (better-sqlite3) in case no prebuilt binary matches the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.json && node dist/scripts/bundle-workflows.js

# ---- prod-deps: production dependencies only ---------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    K2_DATA_DIR=/data
WORKDIR /app
# Application files stay owned by root (read-only for the process); only /data is writable.
COPY package.json package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Non-TS assets read at run time. tsc does not copy them; integrations/gkb/soap-client.ts and xsd.ts
# look first beside the compiled module (__dirname = /app/dist/integrations/gkb), so they go there.
COPY --from=build /app/integrations/gkb/*.wsdl ./dist/integrations/gkb/
COPY --from=build /app/integrations/gkb/schema/*.xsd ./dist/integrations/gkb/schema/
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8080
CMD ["node", "dist/api/main.js"]
