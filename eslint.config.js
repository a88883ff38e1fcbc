// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// The runner runs inside the sandbox and the host outside it: they share only src/shared.
const boundary = (forbidden) => ({
  'no-restricted-imports': [
    'error',
    {
      patterns: [
        {
          group: [`**/${forbidden}/*`, `**/${forbidden}`],
          message: `crosses the host/runner boundary: share types through src/shared`,
        },
      ],
    },
  ],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  { files: ['src/runner/**/*.ts'], rules: boundary('host') },
  { files: ['src/host/**/*.ts'], rules: boundary('runner') },
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/host/*', '**/runner/*', '**/cli/*'],
              message: 'src/shared imports nothing from either side',
            },
          ],
        },
      ],
    },
  },
  { files: ['bench/**/*.mjs', '*.js'], languageOptions: { globals: globals.node } },
);
