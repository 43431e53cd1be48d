# The worker / API image: Node 20 with the PostgreSQL 15 client tools (pg_dump, pg_restore) the activities run.
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm install --no-save tsx
COPY bin ./bin
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY sandbox ./sandbox
COPY tsconfig.json ./
USER node
ENTRYPOINT ["node", "bin/vaultpam-backup.mjs"]
CMD ["worker"]
