// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // .pgkeep-local/ is local state (the bench's kept database, Node 24 for npm, scratch work): not source.
  { ignores: ['node_modules/', 'dist/', 'cdk.out/', 'coverage/', '.pgkeep-local/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      'no-console': ['error', { allow: ['error'] }],
    },
  },
  {
    // Scripts, dev tools and tests are command-line programs whose job includes printing to the terminal.
    files: ['scripts/**', 'dev/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // The IAM evaluator is AGPL-3.0 and only for the tests' authorization model: nothing that is
    // bundled and deployed (task, functions, catalog, runtime, infra) may import it. test/infra/authz-model.test.ts
    // checks the bundles themselves too.
    files: ['task/**', 'functions/**', 'catalog/**', 'runtime/**', 'infra/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@cloud-copilot/*'], message: 'AGPL-3.0: a devDependency for test/support/authz only, never in anything deployed.' }] },
      ],
    },
  },
  {
    // The contracts between the runtimes (task/, functions/) and the infrastructure live in
    // catalog/: the infra takes names, defaults and parsers from there, never from a runtime's own
    // code, so the runtimes can change inside without the infra noticing, and what they share is in
    // one room. (A later rule for the same files replaces this option, so the AGPL group is repeated.)
    files: ['infra/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@cloud-copilot/*'], message: 'AGPL-3.0: a devDependency for test/support/authz only, never in anything deployed.' },
            {
              group: ['**/task/*', '**/functions/**', '**/runtime/*'],
              message: 'infra/ takes what it shares with the task and the functions from catalog/ only (the one contract room).',
            },
          ],
        },
      ],
    },
  },
  {
    // The build steps are not runtime code: the package build and a synth from the sources bundle
    // the task and the functions with them (infra/build-package.ts, infra/source-assets.ts).
    files: ['infra/build-package.ts', 'infra/source-assets.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@cloud-copilot/*'], message: 'AGPL-3.0: a devDependency for test/support/authz only, never in anything deployed.' },
            {
              group: ['**/task/*', '!**/task/build.ts', '**/functions/**', '!**/functions/build.ts', '**/runtime/*'],
              message: 'only the build steps (task/build.ts, functions/build.ts), never runtime code.',
            },
          ],
        },
      ],
    },
  },
  {
    // catalog/ is pure: the definitions every side shares, importable by the infra at synth time
    // and by both runtimes. Code that talks to AWS or PostgreSQL belongs in runtime/ or the runtime itself.
    files: ['catalog/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@cloud-copilot/*'], message: 'AGPL-3.0: a devDependency for test/support/authz only, never in anything deployed.' },
            { group: ['@aws-sdk/*', '@aws-lambda-powertools/*'], message: 'catalog/ is pure: AWS SDK code goes in runtime/.' },
            { group: ['pg', 'pg-*'], message: 'catalog/ is pure: PostgreSQL code belongs to the task.' },
            { group: ['**/task/*', '**/functions/**', '**/runtime/*', '**/infra/*'], message: 'catalog/ depends on nothing of the sides it connects.' },
          ],
        },
      ],
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
);
