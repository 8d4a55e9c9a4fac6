# The infrastructure runner: Pulumi's Automation API needs the Pulumi CLI next to Node.
FROM pulumi/pulumi-nodejs:3.248.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm i --no-save tsx@4.23.15
COPY packages ./packages
COPY functions ./functions
COPY workflows ./workflows
USER 1000
ENTRYPOINT ["node", "--import", "tsx", "functions/tasks/infrastructure.ts"]
