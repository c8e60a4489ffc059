# Grantpool gateway image. Build: docker build -t grantpool .
# Run it as in compose.yaml (two gateways on one PostgreSQL) or alone with a volume for /data.
FROM node:24-bookworm-slim

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src

# The data directory (config.json, usage; the accounts too unless GRANTPOOL_DATABASE_URL is set).
RUN mkdir -p /data && chown node:node /data
USER node
ENV GRANTPOOL_DATA_DIR=/data \
    GRANTPOOL_HOST=0.0.0.0 \
    MALLOC_ARENA_MAX=1 \
    MALLOC_MMAP_THRESHOLD_=131072
EXPOSE 8045
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8045/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The flags of bin/node-flags.js (test/app/deploy-files.test.ts keeps them in step).
CMD ["node", "--max-semi-space-size=4", "--no-concurrent-recompilation", "--heap-growing-percent=50", "--expose-gc", "bin/grantpool.js", "serve"]
