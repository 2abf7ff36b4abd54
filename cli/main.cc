#include <cstdio>
int main() { std::puts("wbs"); return 0; }
