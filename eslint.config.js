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
    // bundled and deployed (task, functions, catalog, infra) may import it. test/infra/authz-model.test.ts
    // checks the bundles themselves too.
    files: ['task/**', 'functions/**', 'catalog/**', 'infra/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['@cloud-copilot/*'], message: 'AGPL-3.0: a devDependency for test/support/authz only, never in anything deployed.' }] }] },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
);
