import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const PACKAGES = ['core', 'api', 'store', 'services', 'steps', 'infra', 'bootstrap', 'addons', 'encryption', 'hardening', 'health', 'sandbox'];
const PACKAGE_BY_PATH = `^(\\.\\./)+(${PACKAGES.join('|')})/`;

const ENTRY_POINTS_ONLY = [
  { group: ['**/packages/*/*'], message: 'Import another package only through its #name entry point.' },
  { regex: PACKAGE_BY_PATH, message: 'Import another package only through its #name entry point.' },
];
const DYNAMODB_IN_STORE_ONLY = [
  { name: '@aws-sdk/client-dynamodb', message: 'Only packages/store talks to DynamoDB.' },
  { name: '@aws-sdk/lib-dynamodb', message: 'Only packages/store talks to DynamoDB.' },
];
/** What a request never needs: the API Lambda stays small and starts fast (npm run build checks the bundles too). */
const NOT_FOR_REQUESTS = {
  paths: [
    { name: '#infra', message: 'The API and its services never load the infrastructure program.' },
    { name: '#addons', message: 'The API and its services never load the add-on installer.' },
    { name: '#steps', message: 'Workflow steps run in their own functions, not in the API.' },
    { name: '#hardening', message: 'The hardening scorer is a tool, not part of a request.' },
    { name: '#webhooks', message: 'The API loads #webhooks/shared (address guard, secret context), not the senders, their HTTP client and queue.' },
    { name: '@kubernetes/client-node', message: 'The API never talks to a cluster.' },
    { name: 'typescript', message: 'The API never loads the compiler.' },
  ],
  patterns: [
    { group: ['@pulumi/*'], message: 'Only the infrastructure task loads Pulumi.' },
    { group: ['kubernetes-models', 'kubernetes-models/*', '@kubernetes-models/*'], message: 'The API never validates Kubernetes objects.' },
  ],
};
/** The API, its services, the scheduled functions and their wiring. */
const REQUEST_CODE = [
  'packages/api/**/*.ts',
  'packages/services/**/*.ts',
  'functions/api.ts',
  'functions/services.ts',
  'functions/recover.ts',
  'functions/rotation-schedule.ts',
  'functions/version-support.ts',
  'functions/wiring/config.ts',
  'functions/wiring/services.ts',
];

export default tseslint.config(
  // openapi/contract.check.ts is type-checked against generated types by npm run openapi:check.
  { ignores: ['node_modules/', 'out/', '.sst/', '.kiln/', 'coverage/', 'sst-env.d.ts', 'openapi/contract.check.ts', 'openapi/kiln.ts'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' },
        { selector: "CallExpression[callee.object.name='it'][callee.property.name='only']", message: 'No .only on main.' },
        { selector: "CallExpression[callee.object.name='describe'][callee.property.name='only']", message: 'No .only on main.' },
        { selector: "CallExpression[callee.property.name='skip']", message: 'No .skip on main.' },
      ],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/packages/*/*'], message: 'Import another package only through its #name entry point.' },
            { regex: PACKAGE_BY_PATH, message: 'Import another package only through its #name entry point.' },
          ],
        },
      ],
    },
  },
  {
    // Only the store speaks DynamoDB; routes never reach AWS SDKs directly.
    files: ['packages/!(store|sandbox)/**/*.ts', 'functions/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: DYNAMODB_IN_STORE_ONLY, patterns: ENTRY_POINTS_ONLY }] },
  },
  {
    files: REQUEST_CODE,
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [...DYNAMODB_IN_STORE_ONLY, ...NOT_FOR_REQUESTS.paths], patterns: [...ENTRY_POINTS_ONLY, ...NOT_FOR_REQUESTS.patterns] }],
    },
  },
  {
    // A step imports only what it runs: the Pulumi program only in the infrastructure runner (types are free).
    files: ['packages/steps/**/*.ts', 'functions/tasks/*.ts'],
    ignores: ['packages/steps/infrastructure.ts', 'functions/tasks/infrastructure.ts', '**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [{ name: '#infra', message: 'Only the infrastructure runner loads the Pulumi program.', allowTypeImports: true }],
          patterns: [{ group: ['@pulumi/*'], message: 'Only the infrastructure runner loads Pulumi.' }],
        },
      ],
    },
  },
  {
    // Production code never reaches into the sandbox.
    files: ['packages/!(sandbox)/**/*.ts', 'functions/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' },
        { selector: "ImportDeclaration[source.value='#sandbox']", message: 'Production code never imports the sandbox.' },
      ],
    },
  },
  {
    // vitest's asymmetric matchers (expect.any, expect.objectContaining) are typed any.
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      // client-node's models are plain data classes; tests build them as literals, as its own examples do.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Tool configuration files are loaded through their default export.
    files: ['eslint.config.js', 'vitest.config.ts', 'sst.config.ts', 'functions/esbuild-plugins.mjs'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    // The production stack is typed by SST's platform (see tsconfig.sst.json), not by the main project.
    files: ['sst.config.ts'],
    languageOptions: { parserOptions: { projectService: false, project: './tsconfig.sst.json', tsconfigRootDir: import.meta.dirname } },
  },
);
