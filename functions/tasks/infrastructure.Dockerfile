# The infrastructure runner: Pulumi's Automation API needs the Pulumi CLI next to Node (the image's CLI is the
# @pulumi/pulumi version package-lock.json resolves; infrastructure-image.test.ts checks both pins below).
FROM pulumi/pulumi-nodejs:3.248.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm i --no-save tsx@4.23.15
# The resource plugins the cluster program loads, at the versions @pulumi/aws names in its package.json's `pulumi`
# field, baked in so the task downloads nothing at run time. PULUMI_HOME is where the CLI looks for plugins; the task's
# user owns it, since the CLI also writes its login there.
ENV PULUMI_HOME=/var/lib/pulumi
RUN pulumi plugin install resource aws 7.48.0 --exact \
  && chown -R 1000:1000 /var/lib/pulumi
# A plugin the image lacks is then an error, never a download (pulumi/pulumi@01c4ec37 sdk/go/common/env/env.go:
# DISABLE_AUTOMATIC_PLUGIN_ACQUISITION "Disables the automatic installation of missing plugins"), and the CLI does not
# ask the internet for a newer version of itself either (SKIP_UPDATE_CHECK).
ENV PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true PULUMI_SKIP_UPDATE_CHECK=true
COPY packages ./packages
COPY functions ./functions
COPY workflows ./workflows
USER 1000
ENTRYPOINT ["node", "--import", "tsx", "functions/tasks/infrastructure.ts"]
