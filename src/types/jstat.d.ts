/** The part of jstat (CommonJS, no bundled types) the harness uses: Student's t distribution. */
declare module 'jstat' {
  const jstat: {
    jStat: {
      studentt: {
        /** Quantile: the t with P(T ≤ t) = p for `dof` degrees of freedom. */
        inv(p: number, dof: number): number;
        /** Cumulative distribution function P(T ≤ t). */
        cdf(t: number, dof: number): number;
      };
    };
  };
  export default jstat;
}
