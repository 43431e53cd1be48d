# The worker / API image: built from the sources in a first stage, then run as compiled JavaScript (dist/) on Node 20 with the PostgreSQL 15 client tools the activities run.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY scripts/build.mjs ./scripts/build.mjs
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY sandbox ./sandbox
# tsc type-checks, esbuild writes dist/cli.js and its chunks, bundleWorkflowCode writes dist/workflow-bundle.js;
# then the development dependencies (typescript, esbuild, tsx, vitest) are dropped.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
# The worker loads dist/workflow-bundle.js: no webpack at start, no TypeScript in the image.
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["worker"]
