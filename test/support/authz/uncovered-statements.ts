/**
 * Statements of pgkeep's policies that no check of the authorization model depends on (the
 * mutation in test/support/authz/mutation.ts finds them), each with why it stays. Labels are
 * statementLabel()'s, with the environment written as <env>. The model test fails on an uncovered
 * statement that is not here, and on an entry here that some check now depends on.
 */
export const UNCOVERED_STATEMENTS: Readonly<Record<string, string>> = {};
